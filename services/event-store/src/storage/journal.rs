//! The acknowledgement journal: a small file of checksummed records, each holding the events of
//! one group commit, written and `fdatasync`'d before the group's appends are answered.
//!
//! The SQLite writer keeps its transaction open across many groups (see
//! [`super::sqlite`]), so a b-tree page that many appends touch is written to the SQLite WAL
//! once per SQLite commit rather than once per group. The journal is what makes each group
//! durable in between: one sequential write of the group's events (a few KiB) and one
//! `fdatasync`, instead of about 65 WAL pages. After each SQLite commit the journal starts
//! again from its beginning, so it stays small and its blocks are overwritten in place.
//!
//! Record layout (little-endian): magic (4 bytes), payload length (4), CRC-32 of the payload
//! (4), then the payload: the events as JSON. On start-up, [`Journal::open`] reads records from
//! the beginning while each is whole, matches its checksum and continues the previous record's
//! positions; the first record that does not is where the last run stopped writing (older
//! records from before the last restart of the journal have lower positions, so they never
//! continue the chain).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::domain::RecordedEvent;

/// Not ASCII, so JSON text inside an older record never reads as a record start.
const MAGIC: u32 = 0xd10c_7ae5;
const HEADER: usize = 12;
/// Zero-filled when the journal is created, so that appends overwrite allocated blocks (a
/// cheaper `fdatasync` than extending the file).
const INITIAL_SIZE: u64 = 8 * 1024 * 1024;

/// One event as the journal stores it.
#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    position: u64,
    #[serde(borrow)]
    stream_id: &'a str,
    version: u64,
    event_id: Uuid,
    #[serde(borrow)]
    event_type: &'a str,
    schema_version: u32,
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow)]
    metadata: &'a RawValue,
    /// Microseconds since the Unix epoch.
    recorded_at: i64,
}

/// An event read back from the journal.
#[derive(Debug)]
pub struct JournalEvent {
    pub position: u64,
    pub stream_id: String,
    pub version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Box<RawValue>,
    pub metadata: Box<RawValue>,
    pub recorded_at: i64,
}

/// The journal file, open for appending at `offset`.
pub struct Journal {
    file: File,
    path: PathBuf,
    offset: u64,
    buffer: Vec<u8>,
}

impl Journal {
    /// Opens (creating if needed) the journal and returns the events of its valid records, in
    /// order. The next append starts writing after them.
    pub fn open(path: &Path) -> io::Result<(Journal, Vec<JournalEvent>)> {
        let exists = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // One store per data directory: a second process would write the same journal and
        // replay its records into a database the first one is still writing.
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{} is locked: another event-store process is using this data directory",
                    path.display()
                ),
            ),
            std::fs::TryLockError::Error(e) => e,
        })?;
        if !exists || file.metadata()?.len() < INITIAL_SIZE {
            zero_fill(&file)?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        let (events, offset) = read_records(&file)?;
        Ok((
            Journal {
                file,
                path: path.to_path_buf(),
                offset,
                buffer: Vec::with_capacity(64 * 1024),
            },
            events,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written since the last [`Journal::restart`].
    pub fn len(&self) -> u64 {
        self.offset
    }

    /// Writes one record holding `events` and waits until it is on disk.
    pub fn append(
        &mut self,
        events: &[RecordedEvent],
        recorded_at: impl Fn(&RecordedEvent) -> i64,
    ) -> io::Result<()> {
        self.buffer.clear();
        self.buffer.resize(HEADER, 0);
        let entries: Vec<Entry<'_>> = events
            .iter()
            .map(|e| Entry {
                position: e.position,
                stream_id: &e.stream_id,
                version: e.version,
                event_id: e.event_id,
                event_type: &e.event_type,
                schema_version: e.schema_version,
                data: &e.data,
                metadata: &e.metadata,
                recorded_at: recorded_at(e),
            })
            .collect();
        serde_json::to_writer(&mut self.buffer, &entries).map_err(io::Error::other)?;
        let length = u32::try_from(self.buffer.len() - HEADER)
            .map_err(|_| io::Error::other("a journal record over 4 GiB"))?;
        let crc = crc32fast::hash(&self.buffer[HEADER..]);
        self.buffer[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        self.buffer[4..8].copy_from_slice(&length.to_le_bytes());
        self.buffer[8..12].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&self.buffer, self.offset)?;
        self.file.sync_data()?;
        self.offset += self.buffer.len() as u64;
        Ok(())
    }

    /// Starts writing from the beginning again: every event written so far is durable
    /// elsewhere. The older records stay on disk until overwritten; they never continue the new
    /// records' positions, so [`Journal::open`] stops before them.
    pub fn restart(&mut self) {
        self.offset = 0;
    }
}

/// Zero-fills the file up to [`INITIAL_SIZE`] from its current end (a fill cut short by a crash
/// is finished; what the file holds is never overwritten here).
fn zero_fill(file: &File) -> io::Result<()> {
    let chunk = vec![0u8; 1024 * 1024];
    let mut at = file.metadata()?.len();
    while at < INITIAL_SIZE {
        let n = chunk.len().min((INITIAL_SIZE - at) as usize);
        file.write_all_at(&chunk[..n], at)?;
        at += n as u64;
    }
    file.sync_all()
}

/// Reads the chain of valid records from the start: (their events, the offset after them).
fn read_records(file: &File) -> io::Result<(Vec<JournalEvent>, u64)> {
    let size = file.metadata()?.len();
    let mut events: Vec<JournalEvent> = Vec::new();
    let mut offset = 0u64;
    let mut header = [0u8; HEADER];
    let mut payload = Vec::new();
    while offset + HEADER as u64 <= size {
        file.read_exact_at(&mut header, offset)?;
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (magic, length, crc) = (word(0), word(4), word(8));
        let end = offset + HEADER as u64 + u64::from(length);
        if magic != MAGIC || length == 0 || end > size {
            break;
        }
        payload.resize(length as usize, 0);
        file.read_exact_at(&mut payload, offset + HEADER as u64)?;
        if crc32fast::hash(&payload) != crc {
            break;
        }
        let Ok(entries) = serde_json::from_slice::<Vec<Entry<'_>>>(&payload) else {
            break;
        };
        let continues = match (events.last(), entries.first()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(last), Some(first)) => first.position == last.position + 1,
        };
        let dense = entries
            .windows(2)
            .all(|w| w[1].position == w[0].position + 1);
        if !continues || !dense {
            break;
        }
        events.extend(entries.into_iter().map(|e| JournalEvent {
            position: e.position,
            stream_id: e.stream_id.to_owned(),
            version: e.version,
            event_id: e.event_id,
            event_type: e.event_type.to_owned(),
            schema_version: e.schema_version,
            data: e.data.to_owned(),
            metadata: e.metadata.to_owned(),
            recorded_at: e.recorded_at,
        }));
        offset = end;
    }
    Ok((events, offset))
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::new_v4(),
            stream_id: format!("s-{}", position % 3),
            version: position,
            position,
            event_type: "Deposited".to_owned(),
            schema_version: 1,
            data: RawValue::from_string(format!(r#"{{"amount":{position}}}"#)).unwrap(),
            metadata: RawValue::from_string("{}".to_owned()).unwrap(),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn events(positions: std::ops::RangeInclusive<u64>) -> Vec<RecordedEvent> {
        positions.map(event).collect()
    }

    fn positions(read: &[JournalEvent]) -> Vec<u64> {
        read.iter().map(|e| e.position).collect()
    }

    fn append(journal: &mut Journal, events: &[RecordedEvent]) {
        journal.append(events, |e| e.position as i64).unwrap();
    }

    #[test]
    fn records_read_back_whole_and_in_order_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.journal");
        let (mut journal, read) = Journal::open(&path).unwrap();
        assert!(read.is_empty());
        let written = events(1..=3);
        append(&mut journal, &written[..2]);
        append(&mut journal, &written[2..]);
        drop(journal);

        let (journal, read) = Journal::open(&path).unwrap();
        assert_eq!(positions(&read), [1, 2, 3]);
        assert_eq!(read[2].event_id, written[2].event_id);
        assert_eq!(read[2].stream_id, written[2].stream_id);
        assert_eq!(read[2].data.get(), r#"{"amount":3}"#);
        assert_eq!(read[2].recorded_at, 3);
        assert!(
            journal.len() > 0,
            "the next record goes after the ones read"
        );
    }

    #[test]
    fn a_second_open_of_the_same_journal_is_refused_until_the_first_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.journal");
        let (first, _) = Journal::open(&path).unwrap();
        let second = Journal::open(&path)
            .err()
            .expect("a second open is refused");
        assert_eq!(second.kind(), io::ErrorKind::WouldBlock);
        assert!(
            second.to_string().contains("another event-store process"),
            "{second}"
        );
        drop(first);
        Journal::open(&path).expect("opens once the first is closed");
    }

    #[test]
    fn a_torn_last_record_ends_the_journal_and_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        append(&mut journal, &events(1..=2));
        let end_of_first = journal.len();
        append(&mut journal, &events(3..=4));
        // A crash part way through writing the second record: its last bytes never landed.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0u8; 8], journal.len() - 8).unwrap();
        drop((file, journal));

        let (mut journal, read) = Journal::open(&path).unwrap();
        assert_eq!(positions(&read), [1, 2]);
        assert_eq!(journal.len(), end_of_first);
        append(&mut journal, &events(3..=3));
        drop(journal);
        let (_, read) = Journal::open(&path).unwrap();
        assert_eq!(positions(&read), [1, 2, 3]);
    }

    #[test]
    fn after_a_restart_older_records_past_the_new_ones_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        for p in 1..=5 {
            append(&mut journal, &events(p..=p));
        }
        // Events 1 to 5 reached the database; the journal starts again with event 6, whose
        // record is shorter than the two it overwrites, so older bytes follow it.
        journal.restart();
        append(&mut journal, &events(6..=6));
        drop(journal);

        let (_, read) = Journal::open(&path).unwrap();
        assert_eq!(positions(&read), [6]);
    }

    #[test]
    fn a_restart_without_new_records_reads_only_older_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        append(&mut journal, &events(1..=2));
        journal.restart();
        drop(journal);
        // The caller replays only events the database lacks; these it already has.
        let (_, read) = Journal::open(&path).unwrap();
        assert_eq!(positions(&read), [1, 2]);
    }
}
