//! What each write does inside the writer's open transaction: appends (with the idempotent
//! repeat), imports (only when they continue the log), and consumer-group changes. Each returns
//! an outer error that aborts the group and an inner one that is only this write's answer.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::known_ids::KnownIds;
use super::sql::{
    from_micros, get_u64, now_micros, row_to_event, select_subscription, to_i64, to_micros,
    EVENT_COLUMNS, INSERT_EVENT,
};
use super::writer::GroupState;
use crate::domain::{
    AppendBatch, AppendOutcome, EventFilter, ExpectedVersion, GroupName, ImportBatch,
    ImportOutcome, Subscription, SubscriptionSpec,
};
use crate::storage::{ImportConflict, StorageError};

/// Appends one batch inside the group's transaction. The outer error aborts the group; the
/// inner one is this batch's answer (nothing of it was written).
///
/// Repeats are found in memory ([`KnownIds`]); only a batch with a known id reads the stream
/// back, to tell an idempotent retry (the original answer) from a partial repeat.
pub(super) fn append(
    tx: &Connection,
    cache: &HashMap<String, u64>,
    ids: &mut KnownIds,
    state: &mut GroupState,
    batch: &AppendBatch,
) -> rusqlite::Result<Result<AppendOutcome, StorageError>> {
    let stream = batch.stream_id.as_str();
    let current = current_version(tx, cache, state, stream)?;
    if current > 0 && ids.any_known(tx, state, stream, batch.events.iter().map(|e| e.event_id))? {
        if let Some(repeat) = find_repeat(tx, batch)? {
            return Ok(repeat);
        }
    }
    let version_ok = match batch.expected_version {
        ExpectedVersion::Any => true,
        ExpectedVersion::Exact(expected) => expected == current,
    };
    if !version_ok {
        return Ok(Err(StorageError::WrongExpectedVersion { current }));
    }
    // A failed insert fails the whole group, which is undone (see `Writer::undo_group`), so a
    // batch needs no savepoint of its own to be all-or-nothing.
    Ok(Ok(insert_events(tx, state, batch, current)?))
}

/// Inserts the batch after `current`; updates `state` only when every insert succeeded.
fn insert_events(
    tx: &Connection,
    state: &mut GroupState,
    batch: &AppendBatch,
    current: u64,
) -> rusqlite::Result<AppendOutcome> {
    let stream = batch.stream_id.as_str();
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    let mut version = current;
    let mut position = state.head;
    for event in &batch.events {
        version += 1;
        position += 1;
        insert.execute(params![
            to_i64(position),
            stream,
            to_i64(version),
            &event.event_id.as_bytes()[..],
            event.event_type,
            event.schema_version,
            event.data.get(),
            event.metadata.get(),
            state.stamp,
        ])?;
    }
    state.head = position;
    state.last_recorded = state.stamp;
    state.versions.insert(stream.to_owned(), version);
    state
        .new_ids
        .entry(stream.to_owned())
        .or_default()
        .extend(batch.events.iter().map(|e| e.event_id));
    Ok(AppendOutcome {
        version,
        position,
        duplicate: false,
    })
}

/// The stream's version as of this point of the group.
fn current_version(
    tx: &Connection,
    cache: &HashMap<String, u64>,
    state: &mut GroupState,
    stream: &str,
) -> rusqlite::Result<u64> {
    if let Some(v) = state.versions.get(stream).or_else(|| cache.get(stream)) {
        return Ok(*v);
    }
    let v = tx
        .prepare_cached(
            "SELECT version FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1",
        )?
        .query_row([stream], |row| get_u64(row, 0))
        .optional()?
        .unwrap_or(0);
    state.versions.insert(stream.to_owned(), v);
    Ok(v)
}

/// Imports one batch inside the group's transaction, only if it continues the log exactly:
/// its first position is the head's next, every event's version is its stream's next, and its
/// times lie between the last event's and this group's stamp. The outer error aborts the
/// group; the inner one is this batch's answer (nothing of it was written).
pub(super) fn import(
    tx: &Connection,
    cache: &HashMap<String, u64>,
    ids: &mut KnownIds,
    state: &mut GroupState,
    batch: &ImportBatch,
) -> rusqlite::Result<Result<ImportOutcome, StorageError>> {
    let (Some(first), Some(last)) = (batch.events.first(), batch.events.last()) else {
        return Ok(Ok(ImportOutcome {
            first_position: state.head,
            last_position: state.head,
            events: 0,
            duplicate: true,
        }));
    };
    let conflict = |c: ImportConflict| Ok(Err(StorageError::Import(c)));
    if last.position <= state.head {
        return import_repeat(tx, batch);
    }
    if first.position != state.head + 1 {
        return conflict(ImportConflict::NotNext {
            position: first.position,
            head: state.head,
        });
    }
    if to_micros(first.recorded_at) < state.last_recorded {
        return conflict(ImportConflict::Backwards {
            index: 0,
            position: first.position,
            recorded_at: first.recorded_at,
            last: from_micros(state.last_recorded),
        });
    }
    // Times never decrease inside a checked batch, so the last one is the latest.
    if to_micros(last.recorded_at) > state.stamp {
        return conflict(ImportConflict::Future {
            index: batch.events.len() - 1,
            position: last.position,
            recorded_at: last.recorded_at,
            now: from_micros(state.stamp),
        });
    }
    let mut versions: HashMap<String, u64> = HashMap::new();
    for (index, event) in batch.events.iter().enumerate() {
        let stream = event.stream_id.as_str();
        let current = match versions.get(stream) {
            Some(v) => *v,
            None => current_version(tx, cache, state, stream)?,
        };
        if event.version != current + 1 {
            return conflict(ImportConflict::Version {
                index,
                position: event.position,
                stream_id: stream.to_owned(),
                version: event.version,
                current,
            });
        }
        versions.insert(stream.to_owned(), event.version);
    }

    for (index, e) in batch.events.iter().enumerate() {
        let stream = e.stream_id.as_str();
        if ids.any_known(tx, state, stream, std::iter::once(e.event.event_id))? {
            return conflict(ImportConflict::DuplicateId {
                index,
                position: e.position,
                stream_id: stream.to_owned(),
                event_id: e.event.event_id,
            });
        }
    }
    insert_imported(tx, batch)?;
    for e in &batch.events {
        state
            .new_ids
            .entry(e.stream_id.as_str().to_owned())
            .or_default()
            .push(e.event.event_id);
    }
    state.head = last.position;
    state.last_recorded = to_micros(last.recorded_at);
    state.versions.extend(versions);
    Ok(Ok(ImportOutcome {
        first_position: first.position,
        last_position: last.position,
        events: batch.events.len() as u64,
        duplicate: false,
    }))
}

fn insert_imported(tx: &Connection, batch: &ImportBatch) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    for e in &batch.events {
        insert.execute(params![
            to_i64(e.position),
            e.stream_id.as_str(),
            to_i64(e.version),
            &e.event.event_id.as_bytes()[..],
            e.event.event_type,
            e.event.schema_version,
            e.event.data.get(),
            e.event.metadata.get(),
            to_micros(e.recorded_at),
        ])?;
    }
    Ok(())
}

/// A batch wholly at or below the head: the idempotent answer if the store holds exactly these
/// events at these positions (a retried import whose answer was lost), else `Differs`.
fn import_repeat(
    tx: &Connection,
    batch: &ImportBatch,
) -> rusqlite::Result<Result<ImportOutcome, StorageError>> {
    let first = batch.first_position();
    let last = batch.last_position();
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE position >= ?1 AND position <= ?2 ORDER BY position"
    ))?;
    let stored = stmt
        .query_map(params![to_i64(first), to_i64(last)], row_to_event)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (index, e) in batch.events.iter().enumerate() {
        let differs = match stored.get(index) {
            None => Some("position"),
            Some(s) if s.event_id != e.event.event_id => Some("event_id"),
            Some(s) if s.stream_id != e.stream_id.as_str() => Some("stream_id"),
            Some(s) if s.version != e.version => Some("version"),
            Some(s) if s.event_type != e.event.event_type => Some("event_type"),
            Some(s) if s.schema_version != e.event.schema_version => Some("schema_version"),
            Some(s) if s.data.get() != e.event.data.get() => Some("data"),
            Some(s) if s.metadata.get() != e.event.metadata.get() => Some("metadata"),
            Some(s) if s.recorded_at != e.recorded_at => Some("recorded_at"),
            Some(_) => None,
        };
        if let Some(field) = differs {
            return Ok(Err(StorageError::Import(ImportConflict::Differs {
                index,
                position: e.position,
                field,
            })));
        }
    }
    Ok(Ok(ImportOutcome {
        first_position: first,
        last_position: last,
        events: batch.events.len() as u64,
        duplicate: true,
    }))
}

/// When some event of the batch is already in the stream: the idempotent answer if all are
/// (the original version and position), `PartialDuplicate` if only some are; `None` if none.
fn find_repeat(
    tx: &Connection,
    batch: &AppendBatch,
) -> rusqlite::Result<Option<Result<AppendOutcome, StorageError>>> {
    // No index holds event ids (see `KnownIds`): read the stream's ids once, in version order.
    let mut scan = tx.prepare_cached(
        "SELECT event_id, version, position FROM events WHERE stream_id = ?1 ORDER BY version",
    )?;
    let wanted: HashSet<Uuid> = batch.events.iter().map(|e| e.event_id).collect();
    let mut found: Option<(u64, u64)> = None;
    let mut found_count = 0usize;
    let mut rows = scan.query([batch.stream_id.as_str()])?;
    while let Some(row) = rows.next()? {
        let id: [u8; 16] = row.get(0)?;
        if wanted.contains(&Uuid::from_bytes(id)) {
            let hit = (get_u64(row, 1)?, get_u64(row, 2)?);
            found_count += 1;
            found = Some(found.map_or(hit, |f: (u64, u64)| (f.0.max(hit.0), f.1.max(hit.1))));
        }
    }
    Ok(found.map(|(version, position)| {
        if found_count == batch.events.len() {
            Ok(AppendOutcome {
                version,
                position,
                duplicate: true,
            })
        } else {
            Err(StorageError::PartialDuplicate)
        }
    }))
}

pub(super) fn put_subscription(
    tx: &Connection,
    state: &GroupState,
    group: &GroupName,
    spec: &SubscriptionSpec,
) -> rusqlite::Result<Result<Subscription, StorageError>> {
    let existing = select_subscription(tx, group.as_str())?;
    if let Some(start) = spec.start_position {
        if start > state.head {
            return Ok(Err(StorageError::PositionBeyondHead {
                position: start,
                head: state.head,
            }));
        }
    }
    let checkpoint = spec
        .start_position
        .or(existing.map(|s| s.checkpoint))
        .unwrap_or(0);
    let filter = EventFilter {
        event_types: spec.event_types.clone().filter(|t| !t.is_empty()),
        stream_prefix: spec.stream_prefix.clone().filter(|p| !p.is_empty()),
    };
    let types_json = filter
        .event_types
        .as_ref()
        .map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".to_owned()));
    tx.prepare_cached(
        "INSERT INTO subscriptions (name, checkpoint, event_types, stream_prefix, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO UPDATE
         SET checkpoint = excluded.checkpoint, event_types = excluded.event_types,
             stream_prefix = excluded.stream_prefix, updated_at = excluded.updated_at",
    )?
    .execute(params![
        group.as_str(),
        to_i64(checkpoint),
        types_json,
        filter.stream_prefix,
        now_micros()
    ])?;
    Ok(Ok(Subscription {
        group: group.as_str().to_owned(),
        checkpoint,
        filter,
    }))
}

pub(super) fn ack(
    tx: &Connection,
    state: &GroupState,
    group: &GroupName,
    position: u64,
) -> rusqlite::Result<Result<Subscription, StorageError>> {
    let Some(mut sub) = select_subscription(tx, group.as_str())? else {
        return Ok(Err(StorageError::UnknownGroup(group.as_str().to_owned())));
    };
    if position > state.head {
        return Ok(Err(StorageError::PositionBeyondHead {
            position,
            head: state.head,
        }));
    }
    if position > sub.checkpoint {
        tx.prepare_cached(
            "UPDATE subscriptions SET checkpoint = ?2, updated_at = ?3 WHERE name = ?1",
        )?
        .execute(params![group.as_str(), to_i64(position), now_micros()])?;
        sub.checkpoint = position;
    }
    Ok(Ok(sub))
}
