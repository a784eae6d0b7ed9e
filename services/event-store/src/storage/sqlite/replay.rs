//! Start-up: the journal's acknowledged events that SQLite lacks are written to it, and counted
//! in the `event_types` table, before the store serves anything.

use rusqlite::{Connection, TransactionBehavior};

use super::event_types::EventTypes;
use super::sql::{from_micros, insert_recorded};
use crate::domain::RecordedEvent;
use crate::storage::journal::JournalEvent;
use crate::storage::StorageError;

/// Writes the journal's events that SQLite lacks (those after its last position), and adds them
/// to the `event_types` counts, in one transaction, before the store serves anything.
pub(super) fn replay(
    conn: &mut Connection,
    journaled: Vec<JournalEvent>,
) -> Result<(), StorageError> {
    let head: i64 = conn
        .query_row("SELECT coalesce(max(position), 0) FROM events", [], |row| {
            row.get(0)
        })
        .map_err(|e| StorageError::backend("reading the head position", e))?;
    let head = u64::try_from(head).unwrap_or(0);
    let missing: Vec<JournalEvent> = journaled
        .into_iter()
        .filter(|e| e.position > head)
        .collect();
    let Some(first) = missing.first() else {
        return Ok(());
    };
    if first.position != head + 1 {
        return Err(StorageError::backend(
            "replaying the journal",
            std::io::Error::other(format!(
                "the journal continues at position {}, but the database ends at {head}; \
                 the journal does not belong to this database",
                first.position
            )),
        ));
    }
    let count = missing.len();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| StorageError::backend("replaying the journal", e))?;
    let events: Vec<RecordedEvent> = missing
        .into_iter()
        .map(|e| RecordedEvent {
            event_id: e.event_id,
            stream_id: e.stream_id,
            version: e.version,
            position: e.position,
            event_type: e.event_type,
            schema_version: e.schema_version,
            data: e.data,
            metadata: e.metadata,
            recorded_at: from_micros(e.recorded_at),
        })
        .collect();
    insert_recorded(&tx, events.iter())
        .map_err(|e| StorageError::backend("replaying the journal", e))?;
    EventTypes::load(&tx)
        .and_then(|mut types| {
            types.add(&events);
            types.persist(&tx)
        })
        .map_err(|e| StorageError::backend("counting the replayed events by type", e))?;
    tx.commit()
        .map_err(|e| StorageError::backend("replaying the journal", e))?;
    tracing::info!(
        events = count,
        from = head + 1,
        "replayed acknowledged events from the journal"
    );
    Ok(())
}
