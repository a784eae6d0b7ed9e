//! The counts behind `GET /event-types`: for each event type and schema version, how many events
//! the store holds and the positions of the first and the last. The writer keeps them in memory,
//! where they are the authority: it adds a group's events once the group is durable, before it
//! answers, so they cover the tail too. It persists the rows that changed in the `event_types`
//! table right before each SQLite commit, in the same transaction as the events they count, so
//! the table always agrees with the `events` table.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection};

use super::sql::{get_u64, to_i64};
use crate::domain::{EventTypeCount, RecordedEvent};

/// The counts, keyed by (event type, schema version): a `BTreeMap`, so they come out sorted as
/// the answer wants them.
#[derive(Debug, Default)]
pub(super) struct EventTypes {
    rows: BTreeMap<(String, u32), Stats>,
    /// Rows changed since the last [`Self::persist`].
    dirty: BTreeSet<(String, u32)>,
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    count: u64,
    first: u64,
    last: u64,
}

impl EventTypes {
    /// Reads the persisted counts.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let mut stmt = conn.prepare(
            "SELECT event_type, schema_version, count, first_position, last_position
             FROM event_types",
        )?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    (row.get::<_, String>(0)?, row.get::<_, u32>(1)?),
                    Stats {
                        count: get_u64(row, 2)?,
                        first: get_u64(row, 3)?,
                        last: get_u64(row, 4)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Self {
            rows,
            dirty: BTreeSet::new(),
        })
    }

    /// Counts new events (in position order), which must not have been counted before.
    pub(super) fn add<'a>(&mut self, events: impl IntoIterator<Item = &'a RecordedEvent>) {
        for e in events {
            let key = (e.event_type.clone(), e.schema_version);
            let stats = self.rows.entry(key.clone()).or_insert(Stats {
                count: 0,
                first: e.position,
                last: e.position,
            });
            stats.count += 1;
            stats.first = stats.first.min(e.position);
            stats.last = stats.last.max(e.position);
            self.dirty.insert(key);
        }
    }

    /// The answer of `GET /event-types`, sorted by type, then version.
    pub(super) fn counts(&self) -> Vec<EventTypeCount> {
        self.rows
            .iter()
            .map(|((event_type, version), s)| EventTypeCount {
                event_type: event_type.clone(),
                version: *version,
                count: s.count,
                first_position: s.first,
                last_position: s.last,
            })
            .collect()
    }

    /// Writes the rows changed since the last call into the open transaction.
    pub(super) fn persist(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut upsert = conn.prepare_cached(
            "INSERT INTO event_types (event_type, schema_version, count, first_position, last_position)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (event_type, schema_version) DO UPDATE
             SET count = excluded.count, first_position = excluded.first_position,
                 last_position = excluded.last_position",
        )?;
        for key in &self.dirty {
            if let Some(s) = self.rows.get(key) {
                upsert.execute(params![
                    key.0,
                    key.1,
                    to_i64(s.count),
                    to_i64(s.first),
                    to_i64(s.last)
                ])?;
            }
        }
        self.dirty.clear();
        Ok(())
    }
}

/// Creates the `event_types` table if the database has none (a store made before it existed)
/// and fills it from the `events` table, once, in one transaction. Returns the rows filled in,
/// or `None` when the table was already there.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<Option<usize>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let exists: bool = tx.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'event_types'",
        [],
        |row| row.get(0),
    )?;
    if exists {
        return Ok(None);
    }
    tx.execute_batch(
        "CREATE TABLE event_types (
            event_type     TEXT    NOT NULL,
            schema_version INTEGER NOT NULL,
            count          INTEGER NOT NULL,
            first_position INTEGER NOT NULL,
            last_position  INTEGER NOT NULL,
            PRIMARY KEY (event_type, schema_version)
        ) WITHOUT ROWID;",
    )?;
    let rows = tx.execute(
        "INSERT INTO event_types (event_type, schema_version, count, first_position, last_position)
         SELECT event_type, schema_version, count(*), min(position), max(position)
         FROM events GROUP BY event_type, schema_version",
        [],
    )?;
    tx.commit()?;
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    fn event(position: u64, event_type: &str, schema_version: u32) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::new_v4(),
            stream_id: "s".into(),
            version: position,
            position,
            event_type: event_type.into(),
            schema_version,
            data: RawValue::from_string("{}".into()).expect("json"),
            metadata: RawValue::from_string("{}".into()).expect("json"),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn check(events: &[(u64, &str, u32)], expected: &[(&str, u32, u64, u64, u64)]) {
        let mut types = EventTypes::default();
        let events: Vec<_> = events.iter().map(|&(p, t, v)| event(p, t, v)).collect();
        types.add(&events);
        let got: Vec<_> = types
            .counts()
            .into_iter()
            .map(|c| {
                (
                    c.event_type,
                    c.version,
                    c.count,
                    c.first_position,
                    c.last_position,
                )
            })
            .collect();
        let expected: Vec<_> = expected
            .iter()
            .map(|&(t, v, c, f, l)| (t.to_owned(), v, c, f, l))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn counts_per_type_and_version_sorted() {
        check(&[], &[]);
        check(
            &[
                (1, "B", 1),
                (2, "A", 2),
                (3, "A", 1),
                (4, "B", 1),
                (5, "A", 2),
            ],
            &[("A", 1, 1, 3, 3), ("A", 2, 2, 2, 5), ("B", 1, 2, 1, 4)],
        );
    }

    #[test]
    fn persisted_rows_load_back_and_migration_fills_once() {
        let mut conn = Connection::open_in_memory().expect("open");
        super::super::sql::create_schema(&mut conn).expect("schema");
        assert_eq!(migrate(&mut conn).expect("migrate"), Some(0));
        assert_eq!(migrate(&mut conn).expect("migrate again"), None);
        let mut types = EventTypes::default();
        types.add(&[event(1, "A", 1), event(2, "A", 1), event(3, "B", 2)]);
        types.persist(&conn).expect("persist");
        let loaded = EventTypes::load(&conn).expect("load");
        assert_eq!(loaded.counts(), types.counts());
        assert!(loaded.dirty.is_empty());
    }
}
