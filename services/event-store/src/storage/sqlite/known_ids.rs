//! Repeated event ids, found in the writer's memory instead of through a unique index.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use uuid::Uuid;

use super::writer::GroupState;

/// Most event ids [`KnownIds`] holds; past this it forgets every stream and loads them again
/// as they are written (about 20 bytes per id).
pub(super) const KNOWN_IDS_CAP: usize = 1_000_000;

/// The event ids of recently written streams, each stream's set complete: loaded whole from
/// SQLite the first time the stream is written (after start-up or after the cap cleared it),
/// then kept current by the writer, the only one who writes. Repeats are found here instead of
/// through a unique index on (stream_id, event_id): random ids spread such an index's inserts
/// over many b-tree pages, each written to the WAL again on every commit.
#[derive(Default)]
pub(super) struct KnownIds {
    streams: HashMap<String, HashSet<Uuid>>,
    total: usize,
}

impl KnownIds {
    /// Whether the stream already holds any of `ids` (this group's own writes included).
    pub(super) fn any_known(
        &mut self,
        tx: &Connection,
        state: &GroupState,
        stream: &str,
        ids: impl Iterator<Item = Uuid> + Clone,
    ) -> rusqlite::Result<bool> {
        if let Some(written) = state.new_ids.get(stream) {
            if ids.clone().any(|id| written.contains(&id)) {
                return Ok(true);
            }
        }
        if !self.streams.contains_key(stream) {
            let mut scan = tx.prepare_cached("SELECT event_id FROM events WHERE stream_id = ?1")?;
            let loaded = scan
                .query_map([stream], |row| {
                    row.get::<_, [u8; 16]>(0).map(Uuid::from_bytes)
                })?
                .collect::<rusqlite::Result<HashSet<Uuid>>>()?;
            self.total += loaded.len();
            self.streams.insert(stream.to_owned(), loaded);
        }
        let known = &self.streams[stream];
        let any = ids.clone().any(|id| known.contains(&id));
        Ok(any)
    }

    /// Adds a durable group's ids to the streams whose sets are loaded.
    pub(super) fn add(&mut self, new_ids: HashMap<String, Vec<Uuid>>) {
        for (stream, ids) in new_ids {
            if let Some(set) = self.streams.get_mut(&stream) {
                let before = set.len();
                set.extend(ids);
                self.total += set.len() - before;
            }
        }
        if self.total > KNOWN_IDS_CAP {
            self.clear();
        }
    }

    pub(super) fn clear(&mut self) {
        self.streams.clear();
        self.total = 0;
    }
}
